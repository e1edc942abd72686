# One image for both roles: `controller` and `agent` are subcommands of the same CLI.
#
# The base is Debian 13, whose nodejs (20.19) Debian keeps patching. CI builds with --build-arg BASE_IMAGE set to
# a debootstrapped Debian 13, since it has no registry to pull from; everyone else pulls debian:trixie-slim.
#
# Users: the controller runs as uid 1000 (the chart sets runAsUser 1000 and runAsNonRoot). The agent needs
# NET_ADMIN (add and remove the VIP) and NET_RAW (VRRP's raw IP protocol 112 socket, gratuitous ARP). Kubernetes
# grants added capabilities to a non-root process only through file capabilities, and `setcap` on the node binary
# would hand them to every script that binary runs, the controller included. So the image keeps root as its default
# user, and the agent DaemonSet the controller creates runs it as root with every capability dropped except those
# two, no privilege escalation and a read-only root.
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS build
# raw-socket and netlink are node-gyp addons, built against Debian's node headers (libnode-dev); gcc builds the
# agent's gratuitous-ARP helper (src/agent/adapters/garp.c). npm is the release
# the lockfile was written with, from the npm registry, checked against its published sha512: Debian's npm is an
# older major and brings some 400 packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs libnode-dev python3 make g++ gcc ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ADD https://registry.npmjs.org/npm/-/npm-11.19.1.tgz /tmp/npm.tgz
RUN echo "cedb312b1b7f92421a02cfb68b4194e88f8346651dacd6acc5364a25ef5309d4a32b19616a1ff8aff865e7280c0fa5c0835a99f5cd93368991e2a80ec9da75d2  /tmp/npm.tgz" | sha512sum -c - \
 && mkdir /opt/npm && tar -xzf /tmp/npm.tgz -C /opt/npm --strip-components=1 && rm /tmp/npm.tgz \
 && ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# node-gyp builds against the headers Debian installed instead of downloading them.
RUN npm_config_nodedir=/usr npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev \
 && find dist node_modules \( -name '*.map' -o -name '*.d.ts' \) -delete

FROM ${BASE_IMAGE}
# tini is PID 1: it forwards SIGTERM to node at any moment, start-up included, and reaps the ARP helper and `ip`.
# iproute2 is the `ip addr` fallback for the VIP.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs tini iproute2 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc /usr/share/man \
 && useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin ha-nginx
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# 9750: the agent's /metrics, /healthz and /state; 9751: the controller's.
EXPOSE 9750 9751
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli.js"]
CMD ["--help"]
