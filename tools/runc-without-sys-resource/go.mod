// A runc wrapper for machines whose capability bounding set lacks CAP_SYS_RESOURCE (this CI's sandbox): runc
// cannot grant a capability the bounding set lacks, so privileged containers fail unless it is dropped first.
module ha-nginx.io/tools/runc-without-sys-resource

go 1.26.0
