# One control-plane component (kube-apiserver, kube-controller-manager, kube-scheduler or etcd): the static binary,
# built from the pinned module, and nothing else, as the upstream distroless images carry it.
FROM scratch
ARG BINARY
COPY ${BINARY} /usr/local/bin/${BINARY}
ENV PATH=/usr/local/bin
