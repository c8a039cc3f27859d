package validate

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestReasonBounded: every error maps to one of Reasons, so a metrics label stays bounded.
func TestReasonBounded(t *testing.T) {
	types := []field.ErrorType{field.ErrorTypeNotFound, field.ErrorTypeRequired, field.ErrorTypeDuplicate, field.ErrorTypeInvalid,
		field.ErrorTypeNotSupported, field.ErrorTypeForbidden, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTooFew,
		field.ErrorTypeInternal, field.ErrorTypeTypeInvalid, field.ErrorTypeTooShort}
	for _, typ := range types {
		if r := Reason(&field.Error{Type: typ}); !slices.Contains(Reasons, r) || r == "other" {
			t.Errorf("Reason of a %s error = %q", typ, r)
		}
	}
	if r := Reason(&field.Error{Type: field.ErrorTypeInvalid, Origin: "format=k8s-long-name"}); r != "other" {
		t.Errorf("Reason of an unknown origin = %q, want other", r)
	}
	if r := Reason(&field.Error{Type: field.ErrorTypeInvalid, Origin: OriginLimit}); r != OriginLimit {
		t.Errorf("Reason = %q, want %q", r, OriginLimit)
	}
}
