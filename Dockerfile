# The helios-wasm container image (deploy/README.md, "Container image").
#
# `make image` builds it with docker or podman from the static binary it
# builds on this machine: nothing is pulled, so it builds without registry
# access. Its context is the folder make stages (build/image/): helios-wasm
# (CGO_ENABLED=0), ca-certificates.crt (for kafka: with TLS), an empty
# data/, and plugins/ (the Go examples, for the second stage).
#
# Two targets:
#   helios-wasm           the runtime alone; mount operators at /plugins
#   helios-wasm-examples  the same plus the example operators baked into
#                         /plugins/go (a second stage: bake your own the same way)
# deploy/image/Dockerfile.multistage builds both from source, for users
# with a registry.

FROM scratch AS helios-wasm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# /data (the volume) and /cache must belong to the user that runs.
COPY --chown=65532:65532 data/ /data/
COPY --chown=65532:65532 data/ /cache/
COPY --chown=65532:65532 data/ /plugins/
COPY helios-wasm /usr/local/bin/helios-wasm
USER 65532:65532
# The admin API listens on every interface; the health check below asks
# 127.0.0.1:8080, which must stay among the allowed Host values (add the
# names Prometheus and your clients use, comma-separated).
ENV PATH=/usr/local/bin \
    HELIOS_DATA_DIR=/data \
    HELIOS_CACHE_DIR=/cache \
    HELIOS_ADMIN=0.0.0.0:8080 \
    HELIOS_ADMIN_ALLOWED_HOSTS=127.0.0.1:8080
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["helios-wasm", "healthcheck", "--admin", "127.0.0.1:8080"]
ENTRYPOINT ["helios-wasm"]
CMD ["--help"]

FROM helios-wasm AS helios-wasm-examples
COPY plugins/ /plugins/
