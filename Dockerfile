# The scimsync worker and starter, for docker-compose.temporal.yml and production images.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/worker ./cmd/starter ./cmd/scimtest-server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/worker"]
