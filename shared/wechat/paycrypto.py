"""WeChat Pay API v3 cryptography, shared by the client and the local pay fake.

RSA-SHA256 (PKCS#1 v1.5) signatures over newline-terminated lines, the
`WECHATPAY2-SHA256-RSA2048` Authorization header, AEAD_AES_256_GCM resources keyed by
the APIv3 key, and the dev credential set (`dev_pay_credentials`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import string
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from shared.keyfile import create_secret_file

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8))
_ALNUM = string.ascii_letters + string.digits
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def nonce(length: int = 32) -> str:
    """A random alphanumeric nonce (`nonce_str`, `nonceStr`)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def signing_message(*parts: str | bytes) -> bytes:
    """Each part followed by a newline, as every WeChat Pay v3 signature covers."""
    return b"".join((p.encode() if isinstance(p, str) else p) + b"\n" for p in parts)


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM; ValueError for anything else."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM public key or a PEM X.509 certificate."""
    data = pem.encode()
    key = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"CERTIFICATE" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def certificates_by_serial(pems: str) -> dict[str, str]:
    """Platform certificates keyed by serial (upper-case hex, as in `Wechatpay-Serial`) from
    concatenated PEM certificates."""
    found: dict[str, str] = {}
    for block in re.findall(
        r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pems, flags=re.S
    ):
        cert = x509.load_pem_x509_certificate(block.encode())
        found[format(cert.serial_number, "X")] = block
    return found


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of the SHA256withRSA signature of `message`."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is a SHA256withRSA signature of `message` by `key`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def authorization(
    key: rsa.RSAPrivateKey,
    *,
    mchid: str,
    serial: str,
    method: str,
    url: str,
    body: bytes,
    timestamp: int,
    nonce_str: str,
) -> str:
    """The Authorization header of a request: `url` is the path with its query, as sent."""
    signature = rsa_sign(key, signing_message(method, url, str(timestamp), nonce_str, body))
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce_str}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial}"'
    )


def parse_authorization(header: str) -> dict[str, str] | None:
    """The parameters of a `WECHATPAY2-SHA256-RSA2048` header, None for another scheme."""
    scheme, _, params = header.partition(" ")
    if scheme != AUTH_SCHEME:
        return None
    return dict(_AUTH_PARAM.findall(params))


def aes_gcm_encrypt(apiv3_key: str, plaintext: bytes, associated_data: str, nonce_str: str) -> str:
    """Base64 of AEAD_AES_256_GCM ciphertext+tag, as in a notification resource."""
    sealed = AESGCM(apiv3_key.encode()).encrypt(
        nonce_str.encode(), plaintext, associated_data.encode()
    )
    return base64.b64encode(sealed).decode()


def aes_gcm_decrypt(apiv3_key: str, ciphertext: str, associated_data: str, nonce_str: str) -> bytes:
    """The plaintext of a resource; ValueError when it does not authenticate."""
    try:
        return AESGCM(apiv3_key.encode()).decrypt(
            nonce_str.encode(),
            base64.b64decode(ciphertext, validate=True),
            associated_data.encode(),
        )
    except (InvalidTag, ValueError) as exc:
        raise ValueError("resource does not decrypt") from exc


def rfc3339(moment: dt.datetime) -> str:
    """`2026-12-01T18:30:00+08:00`: the time format of WeChat Pay (China time)."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _platform_certificate(key: rsa.RSAPrivateKey, serial: int) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (dev fake)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_dev_credentials(appid: str) -> dict[str, str]:
    """A fresh, consistent credential set for the merchant (client) and the pay fake.

    Merchant: mchid, certificate serial and key. WeChat Pay (the fake): its key pair and
    public key id `PUB_KEY_ID_…`, and a platform certificate with its serial for tests of a
    switch-over. Both sides share the APIv3 key (32 ASCII characters).
    """
    merchant, fake, platform = _new_key(), _new_key(), _new_key()
    platform_serial = secrets.randbits(159) | (1 << 158)
    return {
        "appid": appid,
        "mchid": "1900" + "".join(secrets.choice(string.digits) for _ in range(6)),
        "merchant_serial": secrets.token_hex(20).upper(),
        "merchant_key_pem": private_pem(merchant),
        "merchant_public_key_pem": public_pem(merchant.public_key()),
        "apiv3_key": nonce(32),
        "public_key_id": "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(22)),
        "public_key_pem": public_pem(fake.public_key()),
        "wechatpay_private_key_pem": private_pem(fake),
        "platform_serial": format(platform_serial, "X"),
        "platform_certificate_pem": _platform_certificate(platform, platform_serial),
        "platform_private_key_pem": private_pem(platform),
    }


DEV_CREDENTIALS_FILE = "keys/wechatpay_dev.json"


def dev_pay_credentials(data_dir: Path, appid: str | None = None) -> dict[str, str]:
    """The dev WeChat Pay credentials under `data_dir`, created (mode 0600) on first use.

    Every process of the dev stack (devstack, the pay fake, the tests) reads the same set,
    so the merchant side and the fake agree on keys, serials and the APIv3 key.
    """
    if appid is None:
        from shared.settings import DEV_WECHAT_APPID

        appid = DEV_WECHAT_APPID
    chosen = appid
    raw, _ = create_secret_file(
        Path(data_dir) / DEV_CREDENTIALS_FILE,
        lambda: json.dumps(make_dev_credentials(chosen)).encode(),
    )
    creds: dict[str, str] = json.loads(raw)
    return creds


def read_credentials(source: Path) -> dict[str, str]:
    """Credentials from a JSON file, or from (and created in) a data directory."""
    if source.is_dir():
        return dev_pay_credentials(source)
    creds: dict[str, str] = json.loads(source.read_text())
    return creds


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by case-insensitive name ('' when absent), for plain dicts too."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value
