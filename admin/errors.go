package admin

import (
	"errors"
	"net/http"
	"strconv"
)

// Sentinels that admin errors unwrap to; branch on them with errors.Is.
var (
	// ErrDisabled: admin.listen is "", there is no listener to start.
	ErrDisabled = errors.New("admin: listener disabled (admin.listen is \"\")")
	// ErrNoCredentials: the request carries neither a bearer token nor a
	// client certificate. Only /healthz is served to it.
	ErrNoCredentials = errors.New("admin: no credentials")
	// ErrUnauthenticated: a credential was presented and not accepted, or
	// none was presented where one is needed (HTTP 401).
	ErrUnauthenticated = errors.New("admin: not authenticated")
	// ErrForbidden: the identity's role does not allow the action (HTTP
	// 403).
	ErrForbidden = errors.New("admin: forbidden")
	// ErrRestartRequired: Update applied the new credentials, but a
	// change of admin.listen or admin.tls takes a restart.
	ErrRestartRequired = errors.New("admin: restart required")
)

// StatusError is a Client's error for a response other than 2xx. It
// unwraps to ErrUnauthenticated for 401 and ErrForbidden for 403.
type StatusError struct {
	Code int    // HTTP status code
	Msg  string // the first line of the response body
}

func (e *StatusError) Error() string {
	msg := "admin: " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	return msg
}

func (e *StatusError) Unwrap() error {
	switch e.Code {
	case http.StatusUnauthorized:
		return ErrUnauthenticated
	case http.StatusForbidden:
		return ErrForbidden
	}
	return nil
}
