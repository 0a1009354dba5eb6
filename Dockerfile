# Build: docker build -t ccsbc .
# Run:   docker run --rm --network host -v /etc/ccsbc:/etc/ccsbc:ro ccsbc run --config /etc/ccsbc/ccsbc.yaml
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ccsbc ./cmd/ccsbc

# distroless/static: no shell, no package manager; runs as uid 65532. The
# generated certificate is kept in $HOME/.local/state/ccsbc unless the
# configuration names one (mount a volume there to keep it across restarts).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ccsbc /usr/local/bin/ccsbc
COPY configs/ /etc/ccsbc/examples/
USER 65532:65532
EXPOSE 5060/udp 5060/tcp 5061/tcp 40000-40999/udp
# The admin API listens on 127.0.0.1:9060 by default (inside the container).
HEALTHCHECK --interval=15s --timeout=5s --retries=3 CMD ["/usr/local/bin/ccsbc", "health", "--admin", "127.0.0.1:9060"]
ENTRYPOINT ["/usr/local/bin/ccsbc"]
CMD ["run"]
