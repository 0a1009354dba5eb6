//go:build !linux

package load

import "errors"

func pinThreads(cpus string) (restore func(), err error) {
	return nil, errors.New("load: pinning the generator needs Linux")
}
