# Postback: build the release binary, then run it on a slim Debian as a non-root user
# (the files in /app belong to root and are read-only for the server).
#   docker build -t postback .    (or: docker compose up --build)
# The server needs DATABASE_URL (PostgreSQL 15+); it applies its migrations on start.

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && cp target/release/postback /src/postback

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system postback \
 && useradd --system --gid postback --home-dir /app --no-create-home --shell /usr/sbin/nologin postback
WORKDIR /app
# The key that seals secrets at rest lives here unless POSTBACK_SECRET_KEY is set: keep it on a
# volume (docker-compose.yml does).
RUN mkdir -p /var/lib/postback && chown postback:postback /var/lib/postback
COPY --from=build /src/postback /app/postback
COPY --from=build /src/templates /app/templates
COPY --from=build /src/static /app/static
USER postback
ENV POSTBACK_LISTEN=0.0.0.0:8080 POSTBACK_DATA_DIR=/var/lib/postback
EXPOSE 8080
ENTRYPOINT ["/app/postback"]
CMD ["serve"]
