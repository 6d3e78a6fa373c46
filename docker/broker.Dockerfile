# Ironlog broker image. Build from the repository root:
#   docker build -f docker/broker.Dockerfile -t ironlog/ironlog:0.1.0 .
# The operator's StatefulSet runs `/bin/sh -c 'export IRONLOG_NODE_ID=${POD_NAME##*-}; exec ironlog broker'`,
# so the runtime image needs a POSIX shell (debian-slim has one) and `ironlog` on PATH.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p ironlog-server --bin ironlog

FROM debian:bookworm-slim
RUN useradd --uid 1000 --home-dir /var/lib/ironlog --create-home ironlog
COPY --from=build /src/target/release/ironlog /usr/local/bin/ironlog
USER 1000
VOLUME /var/lib/ironlog
EXPOSE 9092 9093 9644
ENTRYPOINT ["ironlog"]
CMD ["broker", "--listen", "0.0.0.0:9092", "--metrics-listen", "0.0.0.0:9644", "--data-dir", "/var/lib/ironlog"]
