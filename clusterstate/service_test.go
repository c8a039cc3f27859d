package clusterstate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestTargetPort(t *testing.T) {
	for _, tt := range []struct {
		name string
		sp   corev1.ServicePort
		want intstr.IntOrString
	}{
		{"unset", corev1.ServicePort{Port: 80}, intstr.FromInt32(80)},
		{"empty name, as files may write it", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("")}, intstr.FromInt32(80)},
		{"a number", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)}, intstr.FromInt32(8080)},
		{"a name", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}, intstr.FromString("http")},
	} {
		if got := TargetPort(&tt.sp); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if Protocol("") != corev1.ProtocolTCP || Protocol(corev1.ProtocolUDP) != corev1.ProtocolUDP {
		t.Error("Protocol does not default to TCP alone")
	}
}
