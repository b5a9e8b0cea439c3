package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes that make syncs findable, e.g.
// `temporal workflow list --query "ScimProvider = 'slack'"`. Their values are provider
// names and object kinds, never personal data: search attributes are not encrypted.
var (
	ProviderAttribute   = temporal.NewSearchAttributeKeyKeyword("ScimProvider")
	ObjectKindAttribute = temporal.NewSearchAttributeKeyKeyword("ScimObjectKind")
)

// SearchAttributes lists the custom search attributes the worker registers when missing.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	ProviderAttribute.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	ObjectKindAttribute.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}
