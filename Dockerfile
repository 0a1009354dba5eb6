# Build: docker build -t ccsbc .
# Run:   docker run --rm --network host ccsbc run --config /etc/ccsbc/ccsbc.yaml
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ccsbc ./cmd/ccsbc

# distroless/static: no shell, no package manager, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ccsbc /usr/local/bin/ccsbc
COPY configs/ /etc/ccsbc/
USER 65532:65532
EXPOSE 5060/udp 5060/tcp 5061/tcp 40000-40999/udp
ENTRYPOINT ["/usr/local/bin/ccsbc"]
CMD ["run"]
