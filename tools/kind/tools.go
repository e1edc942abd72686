//go:build tools

// Keeps kind's dependencies in go.mod and go.sum; scripts/k8s-binaries.sh builds its main package.
package tools

import _ "sigs.k8s.io/kind/pkg/cmd/kind"
