// Command runc-without-sys-resource removes CAP_SYS_RESOURCE from the OCI capability lists a container runtime
// hands to runc, then execs the real runc with the same arguments. It edits the bundle's config.json for
// `create`/`run --bundle DIR` and the process file for `exec --process FILE`; everything else passes through.
// Test infrastructure only: a normal machine has the capability and needs no wrapper.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const (
	droppedCapability = "CAP_SYS_RESOURCE"
	defaultRealRunc   = "/usr/sbin/runc"
)

func main() {
	args := os.Args[1:]
	if path := flagValue(args, "bundle", "b"); path != "" {
		must(dropFromFile(filepath.Join(path, "config.json"), true))
	}
	if path := flagValue(args, "process", "p"); path != "" && contains(args, "exec") {
		must(dropFromFile(path, false))
	}
	real := os.Getenv("REAL_RUNC")
	if real == "" {
		real = defaultRealRunc
	}
	must(syscall.Exec(real, append([]string{real}, args...), os.Environ()))
}

// flagValue finds --name VALUE, --name=VALUE, -short VALUE or -short=VALUE, as runc's flag parser accepts them.
func flagValue(args []string, name, short string) string {
	for i, arg := range args {
		for _, prefix := range []string{"--" + name, "-" + name, "-" + short} {
			if arg == prefix && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(arg, prefix+"=") {
				return strings.TrimPrefix(arg, prefix+"=")
			}
		}
	}
	return ""
}

func contains(args []string, word string) bool {
	for _, arg := range args {
		if arg == word {
			return true
		}
	}
	return false
}

// dropFromFile rewrites an OCI config (isBundle: capabilities under "process") or a process file without the
// capability, keeping every other field as it was.
func dropFromFile(path string, isBundle bool) error {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	process := doc
	if isBundle {
		inner, ok := doc["process"].(map[string]any)
		if !ok {
			return nil
		}
		process = inner
	}
	capabilities, ok := process["capabilities"].(map[string]any)
	if !ok {
		return nil
	}
	for set, list := range capabilities {
		names, ok := list.([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(names))
		for _, name := range names {
			if name != droppedCapability {
				kept = append(kept, name)
			}
		}
		capabilities[set] = kept
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "runc-without-sys-resource:", err)
		os.Exit(1)
	}
}
