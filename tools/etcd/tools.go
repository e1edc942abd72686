//go:build tools

// Keeps the etcd command's dependencies in go.mod and go.sum; scripts/k8s-binaries.sh builds it.
package tools

import _ "go.etcd.io/etcd/server/v3/etcdmain"
