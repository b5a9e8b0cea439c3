package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
)

// SyncBatch maps, validates and writes one batch of a full sync (page_size objects of one
// kind), and for groups brings their membership up to date. As a child workflow of its own,
// each batch can run on any worker.
func SyncBatch(ctx workflow.Context, in SyncBatchInput) (SyncBatchResult, error) {
	counts, err := syncObjects(ctx, activities.ObjectsInput{Provider: in.Provider, Kind: in.Kind, IDs: in.IDs,
		ReadBack: in.ReadBack}, useLocalReads(ctx))
	return SyncBatchResult{Counts: counts}, err
}
