# kube-proxy in nftables mode needs nft; iptables and conntrack are for cleaning up after the other modes.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iptables conntrack \
 && rm -rf /var/lib/apt/lists/*
COPY kube-proxy /usr/local/bin/kube-proxy
