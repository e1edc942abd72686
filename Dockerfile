# syntax=docker/dockerfile:1
# One image for both roles: `controller` and `agent` are subcommands of the same CLI.
#
# Users: the controller runs as the node image's non-root `node` user (uid 1000); the chart's Deployment sets
# runAsUser 1000 and runAsNonRoot. The agent needs NET_ADMIN (add and remove the VIP) and NET_RAW (VRRP's raw
# IP protocol 112 socket, gratuitous ARP). Kubernetes grants added capabilities to a non-root process only through
# file capabilities, and `setcap` on the node binary would hand them to every script that binary runs, the
# controller included. So the image keeps root as its default user, and the agent DaemonSet the controller creates
# runs it as root with every capability dropped except those two, no privilege escalation and a read-only root.

FROM node:20-bookworm-slim AS build
# raw-socket is a node-gyp addon.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

FROM node:20-bookworm-slim
# arping sends the gratuitous ARP on becoming MASTER; iproute2 is the `ip addr` fallback for the VIP.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iputils-arping iproute2 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# 9750: the agent's /metrics, /healthz and /state (the controller moves it per VRID); 9751: the controller's.
EXPOSE 9750 9751
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["--help"]
