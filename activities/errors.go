package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/scim"
)

// nonRetryable wraps err in a non-retryable application error of the given type.
func nonRetryable(errType string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, err)
}

// classify turns a SCIM error that stops the whole activity into a Temporal error, per the
// DESIGN §5 table. Object errors are handled per object by the callers and never get here,
// except from calls that concern the provider as a whole (discovery).
//
//   - 401, 403, TLS, bad base URL, redirect, HTML answers: a ProviderError, not retried;
//   - 429 and 503 with Retry-After: retried after Retry-After (NextRetryDelay);
//   - network errors, timeouts, 5xx: retried with backoff;
//   - anything else unusable (huge bodies, 4xx on discovery): a TargetInvalidError.
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
		return temporal.NewApplicationErrorWithOptions(msg, "RateLimited", temporal.ApplicationErrorOptions{
			Cause: err, NextRetryDelay: scim.RetryAfterOf(err),
		})
	case scim.IsRetryable(err):
		return temporal.NewApplicationErrorWithOptions(msg, "TargetUnavailable", temporal.ApplicationErrorOptions{
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
