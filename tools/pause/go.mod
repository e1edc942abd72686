// The pod sandbox's pause process for the kind node image, which is built here with no registry to pull from.
module ha-nginx.io/tools/pause

go 1.26.0
