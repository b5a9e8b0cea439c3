package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/scim"
)

// nonRetryable wraps err in a non-retryable application error of the given type.
func nonRetryable(errType string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, err)
}

// classify turns a SCIM error that stops the whole activity into a Temporal error, per the
// error table of docs/architecture.md ("Error handling"). Object errors are handled per
// object by the callers and never get here, except from calls that concern the provider as
// a whole (discovery).
//
//   - 401, 403, TLS, bad base URL, redirect, HTML answers: a ProviderError, not retried;
//   - 429 and 503 with Retry-After: retried after Retry-After (NextRetryDelay);
//   - network errors, timeouts, 408 and 5xx but 501 and 505 (scim.IsRetryable): retried with
//     backoff;
//   - anything else unusable (huge bodies, 4xx on discovery, 501, 505): a TargetInvalidError.
func classify(provider string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, scim.ErrCanceled) {
		return err
	}
	msg := fmt.Sprintf("provider %s: %v", provider, err)
	switch {
	case scim.IsProviderFatal(err):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeProvider, err)
	case scim.IsRateLimited(err):
		return temporal.NewApplicationErrorWithOptions(msg, errTypeRateLimited, temporal.ApplicationErrorOptions{
			Cause: err, NextRetryDelay: scim.RetryAfterOf(err),
		})
	case scim.IsRetryable(err):
		return temporal.NewApplicationErrorWithOptions(msg, errTypeUnavailable, temporal.ApplicationErrorOptions{
			Cause: err, NextRetryDelay: scim.RetryAfterOf(err),
		})
	}
	var se *scim.Error
	if errors.As(err, &se) {
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeTargetInvalid, err)
	}
	// Database and other local errors: retried.
	return err
}

// objectMessage describes an object error for its link and the workflow result: status,
// scimType and request line; never the server's detail (which may echo personal data).
func objectMessage(err error) string {
	var se *scim.Error
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}

// Types of the retryable errors of a target that failed a request but may answer the next:
// 429 (and 503 with Retry-After), and network errors, timeouts, 408 and the other
// transient 5xx.
const (
	errTypeRateLimited = "RateLimited"
	errTypeUnavailable = "TargetUnavailable"
)

// How writers ride out a flaky target within one activity attempt (see writer.each).
const (
	maxIdlePasses        = 3                // passes in a row that finish nothing
	maxPassDelay         = 10 * time.Second // longer waits are left to Temporal's retry
	maxUnavailableInARow = 3                // transient failures in a row end a pass early
)

// isTransient reports whether err (from classify) is a transient failure of the target.
func isTransient(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && (ae.Type() == errTypeUnavailable || ae.Type() == errTypeRateLimited)
}

// isRateLimited reports whether err (from classify) asks to slow down.
func isRateLimited(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == errTypeRateLimited
}
