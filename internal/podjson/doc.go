// Package podjson reads and writes a pod's JSON by bytes, for the admission hot path: the scan
// that cuts managedFields, the metadata-only and one-pass decoders, the replica key of the
// answer memo, and the JSON patch of an injection written from its change set. It is a leaf:
// it knows JSON and the Pod type, not what injection means; callers pass that in (the mask
// of the replica key is inject.ReplicaMask). Every function here is fuzzed or differentially
// tested against the general implementation it stands in for.
package podjson
