package config

import (
	"bytes"
	_ "embed"
)

//go:embed default.yaml
var defaultYAML []byte

// defaultName is what errors and warnings call the embedded default.
const defaultName = "default.yaml (embedded)"

// Default returns the embedded default configuration: model 1 on
// loopback, the loopback lab of the product description. `ccsbc run`
// uses it when no file is given, so that a newcomer sees calls flow at
// once. Its File is "".
func Default() (*Config, error) {
	c, err := Parse(defaultName, defaultYAML)
	if err != nil {
		return nil, err
	}
	c.File = ""
	return c, nil
}

// DefaultYAML returns the annotated text of the embedded default, a
// starting point for a configuration of one's own.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }
