# Ironlog broker image, FROM scratch: build it with docker/build-images.sh, which assembles the
# root filesystem (binary, its shared libraries, a static busybox for /bin/sh) as the context.
# The operator's StatefulSet runs `/bin/sh -c 'export IRONLOG_NODE_ID=${POD_NAME##*-}; exec ironlog broker'`.
FROM scratch
COPY rootfs/ /
# A directory COPY creates is owned by --chown; the data dir must be the broker user's.
COPY --chown=1000:1000 data/ /var/lib/ironlog/
ENV PATH=/usr/local/bin:/bin
USER 1000:1000
VOLUME /var/lib/ironlog
EXPOSE 9092 9093 9644
ENTRYPOINT ["/usr/local/bin/ironlog"]
CMD ["broker", "--listen", "0.0.0.0:9092", "--metrics-listen", "0.0.0.0:9644", "--data-dir", "/var/lib/ironlog"]
