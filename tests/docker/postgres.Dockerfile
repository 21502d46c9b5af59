# Stand-in for compose.yaml's postgres image where no registry is reachable: Debian's PostgreSQL 15
# on the locally made base image, started the way the official image starts (postgres-init.sh).
ARG BASE_IMAGE=voicetap-base:py311
FROM ${BASE_IMAGE}
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-init.sh /usr/local/bin/postgres-init
USER postgres
VOLUME ["/var/lib/postgresql/data"]
ENTRYPOINT ["postgres-init"]
CMD ["postgres"]
