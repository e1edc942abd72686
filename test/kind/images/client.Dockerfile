# The probing client on the kind network: testing/lab/probe-main.ts, one JSON line per request.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*
COPY probe-main.js /probe-main.mjs
ENTRYPOINT ["node", "/probe-main.mjs"]
