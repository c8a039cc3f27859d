package v1alpha1

// NamesService reports whether the config's destinationRefs name the Service of that name, with
// the rules the validating webhook enforces: kind Service, in the config's own namespace (an
// empty namespace is its own). Injection, validation and `describe` all ask it.
func (c *PluginConfig) NamesService(service string) bool {
	for _, ref := range c.Spec.DestinationRefs {
		if ref.Kind == "Service" && ref.Name == service && (ref.Namespace == "" || ref.Namespace == c.Namespace) {
			return true
		}
	}
	return false
}
