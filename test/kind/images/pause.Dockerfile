# The pod sandbox image (tools/pause).
FROM scratch
COPY pause /pause
ENTRYPOINT ["/pause"]
