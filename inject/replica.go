package inject

import (
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// ReplicaMask is what the answer memo's replica key leaves out of a pod's JSON: the values that
// differ between the replicas of one pod template, none of which injection reads (the webhook's
// TestReplicaKeyMasksOnlyWhatInjectionIgnores). It lives beside the reads it mirrors: a new
// read of any of these by Inject must remove it here. Masked are the top-level metadata's name,
// uid, creationTimestamp, resourceVersion and managedFields, and the names of the volumes and
// volume mounts other than the injection's own (contract.VolumePolicy): the ServiceAccount
// admission plugin names each pod's token volume kube-api-access-<random>.
var ReplicaMask = podjson.Mask{
	Metadata: []string{"name", "uid", "creationTimestamp", "resourceVersion", "managedFields"},
	Names:    []string{"volumes"},
	NestedNames: map[string]string{
		"containers": "volumeMounts", "initContainers": "volumeMounts", "ephemeralContainers": "volumeMounts",
	},
	Keep: contract.VolumePolicy,
}
