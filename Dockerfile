# syntax=docker/dockerfile:1
# Build a static charter binary, then copy it onto a minimal non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/charter ./cmd/charter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/charter /usr/local/bin/charter
USER nonroot:nonroot
EXPOSE 8181
ENTRYPOINT ["charter"]
