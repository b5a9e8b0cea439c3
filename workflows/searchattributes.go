package workflows

import (
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes that make syncs findable, e.g.
// `temporal workflow list --query "ScimProvider = 'slack'"`. Their values are provider
// names, object kinds and object uuids, never personal data: search attributes are not
// encrypted.
var (
	ProviderAttribute   = temporal.NewSearchAttributeKeyKeyword("ScimProvider")
	ObjectKindAttribute = temporal.NewSearchAttributeKeyKeyword("ScimObjectKind")
	// BatchFirstIDAttribute and BatchLastIDAttribute are the smallest and the largest
	// object id of a SyncBatch (version batch-id-range), so that the batches that may hold
	// an object are found without reading every history:
	// `ScimBatchFirstId <= 'ID' AND ScimBatchLastId >= 'ID'`. A range, not the list of
	// ids: Temporal bounds each search attribute value to 2 KiB by default, 50 ids, and a
	// batch holds up to 1000. Batches are cut from a listing in id order, so the ranges of
	// one full sync's batches do not overlap; a range also spans the ids the listing left
	// out, so the batch's input says whether it holds the object.
	BatchFirstIDAttribute = temporal.NewSearchAttributeKeyKeyword("ScimBatchFirstId")
	BatchLastIDAttribute  = temporal.NewSearchAttributeKeyKeyword("ScimBatchLastId")
)

// SearchAttributes lists the custom search attributes the worker registers when missing.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	ProviderAttribute.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	ObjectKindAttribute.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	BatchFirstIDAttribute.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	BatchLastIDAttribute.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// batchIDRange returns the search attributes of a batch of ids: their smallest and
// largest, compared as strings (as Temporal compares Keyword values; lower-case uuids
// compare so as PostgreSQL orders them).
func batchIDRange(ids []string) []temporal.SearchAttributeUpdate {
	if len(ids) == 0 {
		return nil
	}
	return []temporal.SearchAttributeUpdate{
		BatchFirstIDAttribute.ValueSet(slices.Min(ids)), BatchLastIDAttribute.ValueSet(slices.Max(ids)),
	}
}
