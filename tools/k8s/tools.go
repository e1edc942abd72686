//go:build tools

// Keeps the commands' dependencies in go.mod and go.sum; scripts/k8s-binaries.sh builds the main packages: the test
// bed's control plane and kubectl, and kubelet, kubeadm and kube-proxy for the kind node image.
package tools

import (
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubeadm/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
