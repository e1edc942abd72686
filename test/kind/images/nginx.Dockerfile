# The chart's bundled nginx, from Debian's nginx-light: like the official image, the server blocks come from
# /etc/nginx/conf.d (the chart mounts its ConfigMap there) and nginx runs in the foreground.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
