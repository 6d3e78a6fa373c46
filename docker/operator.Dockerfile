# Ironlog operator image, FROM scratch: build it with docker/build-images.sh, which assembles the
# root filesystem (binary and its shared libraries) as the context. No shell: the operator is
# one binary talking HTTPS to the API server and the Kafka protocol to brokers. It runs as the
# nonroot user 65532, as the chart expects.
FROM scratch
COPY rootfs/ /
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ironlog-operator"]
