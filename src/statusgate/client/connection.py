"""How the command line reaches a running gateway's gRPC door: ``--target``,
``--token`` and TLS options, or ``STATUSGATE_TARGET`` / ``STATUSGATE_TOKEN``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "STATUSGATE_TARGET"
TOKEN_ENV = "STATUSGATE_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    token: str = ""
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str = ""

    def channel(self) -> grpc.aio.Channel:
        if not self.tls:
            return grpc.aio.insecure_channel(self.address)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            private_key=self.key_file.read_bytes() if self.key_file else None,
            certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
        )
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.aio.secure_channel(self.address, credentials, options=options)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        # Per call rather than call credentials, which grpc refuses on plaintext
        # channels (a loopback gateway with tokens is a valid setup).
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gateway")
    group.add_argument(
        "--target",
        default=os.environ.get(TARGET_ENV, DEFAULT_TARGET),
        help=f"HOST:PORT of the gateway's gRPC door (${TARGET_ENV}, {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV, ""),
        help=f"bearer token of a configured client (${TOKEN_ENV}; prefer the variable, "
        "which other users cannot read in the process list)",
    )
    group.add_argument("--tls", action="store_true", help="connect with TLS")
    group.add_argument("--ca-file", type=Path, help="PEM CA that signed the gateway (TLS)")
    group.add_argument("--cert-file", type=Path, help="client certificate (mutual TLS)")
    group.add_argument("--key-file", type=Path, help="its private key (mutual TLS)")
    group.add_argument("--server-name", default="", help="TLS name to expect of the gateway")


def target_from(args: argparse.Namespace) -> Target:
    tls = bool(args.tls or args.ca_file or args.cert_file)
    return Target(
        address=args.target,
        token=args.token,
        tls=tls,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        server_name=args.server_name,
    )
