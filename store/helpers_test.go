package store_test

import "slices"

func equal(a, b []string) bool { return slices.Equal(a, b) }

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
