# Builds the static keyward binary and a minimal image around it.
# Its default command is checked against the flags (TestDeployFiles); the
# image is not built in tests: the development machines have no Docker engine.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /keyward ./cmd/keyward
# 0700, as keyward serve and the systemd unit make it: COPY keeps the mode.
RUN mkdir -m 0700 /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /keyward /usr/local/bin/keyward
# The SQLite database and the first start's admin key file live here
# (the master key does not: deploy/keyward.yaml names it in /etc/keyward);
# mount a volume. With PostgreSQL, only the admin key file is written.
# Owned by nonroot (65532), the user the server runs as: WORKDIR alone
# creates it root's under the classic builder, and a new volume takes
# the directory's owner.
COPY --from=build --chown=65532:65532 /data /var/lib/keyward
VOLUME /var/lib/keyward
WORKDIR /var/lib/keyward
# The :nonroot base already runs as 65532; said here too, so that the
# image stays non-root, and its volume its user's, whatever base it is
# built on.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/keyward"]
CMD ["serve", "--data-dir", "/var/lib/keyward", "--listen", ":8443", "--config", "/etc/keyward/keyward.yaml"]
