package manifests

import (
	"fmt"

	"github.com/cors-webhook/cors-webhook/inject"
)

// Injection is what offline injection did with one workload of the input.
type Injection struct {
	// ID names the workload: "Deployment shop/web".
	ID     string
	Result inject.Result
}

// Failed reports whether the injection fails the command: a chain selects the workload but it
// cannot be injected, or its CORS inputs have problems.
func (in *Injection) Failed() bool {
	return in.Result.Outcome.Impossible() || in.Result.Resolution != nil && len(in.Result.Resolution.Problems) > 0
}

// Inject injects, in place, the pod template of every workload of docs that a PluginChain
// selects, exactly as the webhook would inject its pods; the documents themselves are the
// cluster they are judged against (Snapshot, with namespace for objects that set none). It
// returns each document's Injection, nil for a document that is no workload.
func Inject(docs []Document, namespace string, injector *inject.Injector) ([]*Injection, error) {
	// Snapshot defaults namespaces in the objects it is given; the documents must not show that.
	ctx := make([]Document, len(docs))
	for i, d := range docs {
		ctx[i] = d
		ctx[i].Object = d.Object.DeepCopy()
	}
	snap, objs, err := Snapshot(ctx, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]*Injection, len(docs))
	for i, d := range docs {
		w, ok := WorkloadOf(objs[i])
		if !ok {
			continue
		}
		ns, err := snap.Namespace(w.Namespace)
		if err != nil {
			return nil, err
		}
		res, err := injector.Inject(w.Pod(), ns, snap)
		if err != nil {
			return nil, err
		}
		if res.Outcome == inject.Injected {
			if err := w.Apply(d.Object.Object, res.Changes.Annotations, res.Changes.Labels, res.Changes.InitContainers, res.Changes.Volumes); err != nil {
				return nil, fmt.Errorf("%s: %w", d.Where(), err)
			}
		}
		out[i] = &Injection{ID: fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name), Result: res}
	}
	return out, nil
}
