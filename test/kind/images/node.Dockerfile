# The kind node image, built with no registry: kind's own base-image files (entrypoint, systemd units, containerd
# config, sysctls) from the pinned kind module, Debian 13's systemd, containerd, runc and CNI plugins, and kubelet,
# kubeadm and kubectl built from the pinned Kubernetes module. The build context is staged by
# scripts/kind-images.sh. The control-plane images are imported into containerd afterwards, as kind does.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

COPY kind-base/usr/local/bin/ /usr/local/bin/
COPY kind-base/kind/ /kind/
COPY kind-base/etc/ /etc/
# --force-confold keeps kind's /etc/containerd/config.toml when Debian's containerd brings its own.
RUN chmod 755 /usr/local/bin/* /kind /kind/bin /kind/bin/* \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold \
      systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2 pigz \
      bash ca-certificates curl jq procps containerd runc containernetworking-plugins \
 && rm -rf /var/lib/apt/lists/* \
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && ln -sf /usr/lib/systemd/systemd /sbin/init \
 && ln -s /usr/bin/containerd /usr/local/bin/containerd \
 && mkdir -p /opt/cni /etc/kubernetes/manifests \
 && ln -s /usr/lib/cni /opt/cni/bin

COPY bin/ /usr/local/sbin/
COPY kube/ /usr/bin/
# The CI sandbox lacks CAP_SYS_RESOURCE (see tools/runc-without-sys-resource): privileged pods go through the
# wrapper, and containerd must not ask for a negative OOM score, which needs that capability.
RUN ctr oci spec \
      | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
 && sed -i -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
      -e 's#SystemdCgroup = true#SystemdCgroup = true\n    BinaryName = "/usr/local/sbin/runc-without-sys-resource"#' \
      /etc/containerd/config.toml \
 && grep -q 'restrict_oom_score_adj = true' /etc/containerd/config.toml \
 && grep -q 'BinaryName' /etc/containerd/config.toml \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && kubelet --version | awk '{ print $2 }' > /kind/version

ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
