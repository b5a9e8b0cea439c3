package workflows

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Summaries are the one line the Temporal Web UI and `temporal workflow describe` show for
// an execution (Temporal's user metadata, StaticSummary), so that an operator reads
// "demo · user · alice@example.com" where the workflow ID says only
// scim/<installation>/demo/user/<uuid>.
//
// A summary is a payload: the client's (or, for a child, the workflow's) data converter
// encodes it, so with the payload codec (SCIMSYNC_CODEC_KEYS) it is sealed like every input
// and result, and the Web UI shows it through the codec server. Without the codec it is
// stored in clear: a name in a summary is then as readable as the directory data the
// activities' results already hold. Workers with SCIMSYNC_SUMMARY_NAMES=false put the
// object id where the name would be.
//
// Temporal sets a summary when the execution starts and never changes it: a signal to a
// running ObjectSync (SignalWithStart, USE_EXISTING) keeps the summary of its start, and a
// run that continued as new has none.

// maxSummaryName bounds the name in a summary, in bytes. Temporal refuses a summary
// payload over 400 bytes (limit.userMetadataSummarySize); with the name bounded, the whole
// summary, sealed by the codec, stays well under it whatever a directory holds.
const maxSummaryName = 120

// ObjectSyncSummary is the summary of an ObjectSync: provider, kind and name, e.g.
// "demo · user · alice@example.com". name is the user's username or the group's name, or
// the object id where the name is unknown (a deleted object) or left out.
func ObjectSyncSummary(provider, kind, name string) string {
	return provider + " · " + kind + " · " + summaryName(name)
}

// FullSyncSummary is the summary of a provider's FullSync: "full sync of demo".
func FullSyncSummary(provider string) string { return "full sync of " + provider }

// SyncBatchSummary is the summary of the n-th SyncBatch of a full sync, of objects ids of
// one kind: "demo users batch 3 (100 objects)".
func SyncBatchSummary(provider, kind string, n, objects int) string {
	noun := "objects"
	if objects == 1 {
		noun = "object"
	}
	return fmt.Sprintf("%s %ss batch %d (%d %s)", provider, kind, n, objects, noun)
}

// summaryName makes a name fit a single-line summary: control characters and line breaks
// become spaces, runs of spaces one, and a name over maxSummaryName bytes is cut at a
// character boundary and marked with an ellipsis.
func summaryName(name string) string {
	name = strings.Join(strings.FieldsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	}), " ")
	if len(name) <= maxSummaryName {
		return name
	}
	cut := maxSummaryName - len("…")
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}
