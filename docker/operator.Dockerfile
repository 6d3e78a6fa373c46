# Ironlog operator image. Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t ironlog/ironlog-operator:0.1.0 .
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p ironlog-operator --bin ironlog-operator

# No shell needed: the operator is one static-ish binary talking HTTPS to the API server and
# the Kafka protocol to brokers. Runs as the distroless nonroot user (65532, as in the chart).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ironlog-operator /usr/local/bin/ironlog-operator
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ironlog-operator"]
