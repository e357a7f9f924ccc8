# The `outpost` image: every step of every generated template runs this one binary
# (extract, upload, report, orchestrate, heartbeat). Build from the repository root:
#
#   docker build -t ghcr.io/outpost-agent/outpost:0.1.0 .
#
# The binary links glibc dynamically (libc, libm, libgcc_s: `ldd target/release/outpost`),
# so the final stage is distroless `cc` (glibc + libgcc, no shell, no package manager), run
# as its `nonroot` user 65532 (the uid the generated pods enforce). The release profile
# strips the binary (a panic still prints its message and location, not a symbolised
# backtrace) and aborts. Binary: 23.89 MiB (25.1 MB, x86_64; limit 25 MiB, enforced by
# scripts/build-binary.sh); the image is the ~24 MB distroless base plus the binary, about
# 49 MB uncompressed (computed, see README).

# ---- build ----
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# The commit shown by `outpost --version` (crates/outpost/build.rs reads OUTPOST_COMMIT when
# there is no .git, which .dockerignore leaves out).
ARG OUTPOST_COMMIT=unknown
ENV OUTPOST_COMMIT=${OUTPOST_COMMIT}
COPY . .
# The same script CI runs (scripts/test.sh), so the image's build cannot drift from the one
# tested: `cargo build --release --locked -p outpost` (thin LTO, one codegen unit, stripped:
# the release profile), installed at /out/outpost, failing over its size limit.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-binary.sh /out/outpost

# ---- run ----
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/outpost /usr/local/bin/outpost
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/outpost"]
