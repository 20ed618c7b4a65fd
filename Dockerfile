# Multi-stage build: compile Postback, then run it on a slim Debian with nothing else.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin postback

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app --shell /usr/sbin/nologin postback
WORKDIR /app
COPY --from=build /src/target/release/postback /usr/local/bin/postback
USER postback
ENV POSTBACK_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["postback"]
CMD ["serve"]
