package clusterstate

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Service rules that validation (two configs on one pod port) and injection (which pod port
// a config applies to) both read: one function each, so they cannot default differently.

// Protocol is a port's protocol as the API server defaults it: TCP when unset.
func Protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// TargetPort is the pod port a Service port sends to, as the API server defaults it: its
// targetPort, or the port itself when targetPort is unset (0 or "", as files may leave it). A
// number is a pod port, a name a container port's name.
func TargetPort(sp *corev1.ServicePort) intstr.IntOrString {
	tp := sp.TargetPort
	if (tp.Type == intstr.Int && tp.IntVal == 0) || (tp.Type == intstr.String && tp.StrVal == "") {
		return intstr.FromInt32(sp.Port)
	}
	return tp
}
