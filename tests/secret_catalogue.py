"""Every credential shape the agent must never pass on, as a failure text would carry it.

One table for two tests: tests/unit/test_redaction_catalogue.py (redact() alone) and
tests/integration/test_secret_sinks.py (each text as a real failure, through the whole app, every sink searched).
Each value is unique, so a leak found in a sink names its shape.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    name: str
    text: str  # how it shows up in an error message or trace
    secrets: tuple[str, ...]  # parts that must appear in no sink (each long enough to be unambiguous)


PAT = "dapi" + "4f1c9a7b2e8d6c3a" * 2
OAUTH_SECRET = "dose" + "9a8b7c6d5e4f3a2b" * 2
ACCOUNT_KEY = "/XWhH5dUZYFactRZFNVnNfi32ii4xYamSA0EMRI3W6UXx3yJU8brHhjAv8dj8pSfQ8AHURgHhqxZI0HPbHB6gA=="
SERVICE_BUS_KEY = "MickO9M4dl/V4Ccy5rY6fjnOPYLakgZAUnRZTdbzQF4="
SAS_SIG = "Zr5uQe2Wp8Ld%2BnY7tHc3VfK9mXs1BgJ6aOo4%3D"
SAS_SIG_PLAIN = "Zr5uQe2Wp8Ld"
JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6Ik1ya2V5In0.eyJhdWQiOiIyZmY4MTRhNi0zMzA0LTRhYjgtODVjYi1jZDBlNmY4NzljMWQiLCJ"
       "vaWQiOiI3NzcifQ.QmVhcmVyU2lnbmF0dXJlQnl0ZXNIZXJlOTg3NjU0MzIx")
OPAQUE_BEARER = "op4qu3B34r3rT0k3nV4lu3Xy9Zw8"
OPENAI_KEY = "sk-proj-Hq8Jv3Lm5Np7Rt9Vx2Zb4Dc6Fg8"
AOAI_HEX = "7d3f9b1e5c8a2046e9b7d1f3a5c8e024"
AOAI_HEX_2 = "b2c4e6a8d0f1357924680ace13579bdf"
AAD_SECRET = "Ab18Q~Jk3Lm5Np7Rt9Vx2Zb4Dc6Fg8Hj0Kl2Mn4P"
AAD_SECRET_SPARK = "Cd28Q~Qr3St5Uv7Wx9Yz1Ab3Cd5Ef7Gh9Ij1Kl3M"
AAD_SECRET_SPACED = "Ef38Q~Mn3Op5Qr7St9Uv1Wx3Yz5Ab7Cd9Ef1Gh3I"
AAD_LEGACY = "kW3=xQ9-vB7[pL2@nM4*rT6]yU8+zS1h"  # pre-2021 form: 32 characters, symbols included
AAD_LEGACY_2 = "jH5-fG7.dS9_aP2=oI4+uY6*tR8@eW1q"
BASIC_PASSWORD = "W3bh00k-Pa55word-Zq"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PEM_BODY_2 = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi1HxmQ5uVXyZh1KJQW7c0ZpeX"
PEM_CUT = "MIIEowIBAAKCAQEAs7WfPr1kQxZc9LmNoPqRsTuVwXyZa1Bc2De3Fg4Hi5Jk6Lm"
PGP_BODY = "lQOYBF8gKtEBCADZvT1h2Jk3Lm4No5Pq6Rs7Tu8Vw9Xy0Za1Bc2De3Fg4Hi5Jk6"
SQLSERVER_PASSWORD = "Sq1Serv3r!Pw-77"
POSTGRES_PASSWORD = "Pg5ecret-Pw-42x"
MYSQL_PASSWORD = "MyS3cr3t-Pw-81q"
ORACLE_PASSWORD = "Or4cl3Pw-19zz"
ORACLE_PASSWORD_2 = "T1g3rPw-55yy"
DATABRICKS_JDBC_PAT = "dapi" + "0b1c2d3e4f5a6b7c" * 2
SNOWFLAKE_PASSWORD = "Sn0wfl4k3-Pw-33"
COSMOS_KEY = "gzpmlJj7eqz+0jnkNsGUAmqmAn3tFjHAq/Vh860VZeCNCzw+cL/R7WqMGFAur4bqSUGPVY9vHUbSCU7zAC0xHg=="
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9Q8w7e6r5"
GITHUB_TOKEN = "ghp_" + "R7tY9uI1oP3aS5dF7gH9jK1lZ3xC5vB7nM9q"
ENV_SECRET = "EnvV4rS3cr3t-Vq-91"
SLACK_TOKEN = "xoxb-2048613377-4096813523-Qw7rTy9uIo1pAs3dFg5hJk7l"
SLACK_HOOK = "T0ABCD123/B0EFGH456/Zx9Cv8Bn7Mq6Wl5Ek4Rj3Th2"
TEAMS_HOOK = "4f1c9a7b-2e8d-6c3a-4f1c-9a7b2e8d6c3a@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/9c8b7a6d5e4f"
GOOGLE_KEY = "AIzaSyD4f1c9a7b2e8d6c3a_Qw7rTy9uIo1pAs3"
SENDGRID_KEY = "SG.Qw7rTy9uIo1pAs3dFg5hJk.Zx9Cv8Bn7Mq6Wl5Ek4Rj3Th2Yg1Uf0Id9Os8Pa7"
GENERIC_QUOTED = "Qu0t3dS3cr3t-Pw-64"

SHAPES: tuple[Shape, ...] = (
    # --- Databricks ---------------------------------------------------------------------------------------
    Shape("databricks PAT", f"HTTP 401 from the workspace: token {PAT} is invalid", (PAT,)),
    Shape("databricks PAT with suffix", f"retrying with {PAT}-2 failed", (PAT,)),
    Shape("databricks OAuth secret", f"oauth M2M: client secret {OAUTH_SECRET} rejected by /oidc/v1/token",
          (OAUTH_SECRET,)),
    Shape("databricks JDBC PWD", "java.sql.SQLException: [Databricks][JDBC](500593) Communication link failure "
          f"jdbc:databricks://adb-1.2.azuredatabricks.net:443/default;transportMode=http;ssl=1;AuthMech=3;"
          f"UID=token;PWD={DATABRICKS_JDBC_PAT};httpPath=/sql/1.0/warehouses/abc", (DATABRICKS_JDBC_PAT,)),
    # --- Azure storage and other Azure connection strings -------------------------------------------------
    Shape("storage connection string", "azure.core.exceptions.ClientAuthenticationError: "
          f"DefaultEndpointsProtocol=https;AccountName=lake;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
          (ACCOUNT_KEY[:40], ACCOUNT_KEY[40:80])),
    Shape("bare storage account key", f"spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net {ACCOUNT_KEY}",
          (ACCOUNT_KEY[:40],)),
    Shape("SAS signature in a URL", "Operation failed: \"This request is not authorized\", 403, GET, "
          f"https://lake.dfs.core.windows.net/raw/f.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z"
          f"&spr=https&sig={SAS_SIG}", (SAS_SIG_PLAIN,)),
    Shape("SAS token bare", f"fs.azure.sas.fixed.token = sv=2022-11-02&ss=b&srt=co&sp=rl&sig={SAS_SIG}",
          (SAS_SIG_PLAIN,)),
    Shape("service bus connection string", "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName="
          f"RootManageSharedAccessKey;SharedAccessKey={SERVICE_BUS_KEY}", (SERVICE_BUS_KEY[:30],)),
    Shape("cosmos connection string", f"AccountEndpoint=https://cdb.documents.azure.com:443/;AccountKey={COSMOS_KEY};",
          (COSMOS_KEY[:40],)),
    # --- JDBC URLs in every common driver syntax ------------------------------------------------------------
    Shape("JDBC sqlserver", "com.microsoft.sqlserver.jdbc.SQLServerException: Login failed for user 'etl'. "
          "url=jdbc:sqlserver://sql1.database.windows.net:1433;database=dw;user=etl@sql1;"
          f"password={SQLSERVER_PASSWORD};encrypt=true", (SQLSERVER_PASSWORD,)),
    Shape("JDBC postgres query", "org.postgresql.util.PSQLException: FATAL: password authentication failed: "
          f"jdbc:postgresql://pg1:5432/sales?user=etl&password={POSTGRES_PASSWORD}&sslmode=require",
          (POSTGRES_PASSWORD,)),
    Shape("JDBC mysql userinfo", f"Communications link failure: jdbc:mysql://etl:{MYSQL_PASSWORD}@mysql1:3306/sales",
          (MYSQL_PASSWORD,)),
    Shape("JDBC oracle thin user/password@//host", "java.sql.SQLRecoverableException: IO Error: "
          f"jdbc:oracle:thin:scott/{ORACLE_PASSWORD}@//db1.contoso.example:1521/ORCL", (ORACLE_PASSWORD,)),
    Shape("JDBC oracle thin user/password@host:sid", f"url jdbc:oracle:thin:etl/{ORACLE_PASSWORD_2}@db2:1521:PROD",
          (ORACLE_PASSWORD_2,)),
    Shape("JDBC snowflake", f"jdbc:snowflake://acct.snowflakecomputing.com/?user=etl&password={SNOWFLAKE_PASSWORD}"
          "&warehouse=wh", (SNOWFLAKE_PASSWORD,)),
    # --- Bearer, JWT, basic ---------------------------------------------------------------------------------
    Shape("bearer JWT", f"requests.exceptions.HTTPError: 401 headers={{'Authorization': 'Bearer {JWT}'}}", (JWT[:60],)),
    Shape("bare JWT", f"token expired: {JWT}", (JWT[:60],)),
    Shape("bearer opaque", f"Authorization: Bearer {OPAQUE_BEARER}", (OPAQUE_BEARER,)),
    Shape("basic auth header", "Authorization: Basic "
          + base64.b64encode(f"svc:{BASIC_PASSWORD}".encode()).decode(),
          (base64.b64encode(f"svc:{BASIC_PASSWORD}".encode()).decode(),)),
    Shape("password in a URL", f"ConnectionError: https://svc:{BASIC_PASSWORD}@api.contoso.example/v1",
          (BASIC_PASSWORD,)),
    # --- OpenAI / Azure OpenAI ------------------------------------------------------------------------------
    Shape("OpenAI key", f"openai.AuthenticationError: Incorrect API key provided: {OPENAI_KEY}", (OPENAI_KEY,)),
    Shape("Azure OpenAI key, env style", f"AZURE_OPENAI_API_KEY={AOAI_HEX} was rejected", (AOAI_HEX,)),
    Shape("Azure OpenAI key, bare 32-hex after 'key'", f"Access denied due to invalid subscription key {AOAI_HEX_2}. "
          "Make sure to provide a valid key for an active subscription.", (AOAI_HEX_2,)),
    # --- Entra ID (AAD) client secrets ----------------------------------------------------------------------
    Shape("AAD client_secret=", f"POST /oauth2/v2.0/token grant_type=client_credentials&client_secret={AAD_SECRET}",
          (AAD_SECRET,)),
    Shape("AAD spark conf =", "Configuration property fs.azure.account.oauth2.client.secret.lake.dfs.core.windows.net"
          f"={AAD_SECRET_SPARK} not usable", (AAD_SECRET_SPARK,)),
    Shape("AAD spark conf spaced", f"spark.hadoop.fs.azure.account.oauth2.client.secret.lake.dfs.core.windows.net "
          f"{AAD_SECRET_SPACED}", (AAD_SECRET_SPACED,)),
    Shape("AAD spark conf JSON", f'{{"fs.azure.account.oauth2.client.secret": "{AAD_LEGACY_2}"}}', (AAD_LEGACY_2,)),
    Shape("AAD secret quoted in AADSTS", "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
          f"sent in the request is the client secret value, not the client secret ID. Secret: '{AAD_LEGACY}'",
          (AAD_LEGACY,)),
    Shape("AAD secret bare (Q~ form)", f"ClientSecretCredential failed with {AAD_SECRET}", (AAD_SECRET,)),
    # --- Keys in files --------------------------------------------------------------------------------------
    Shape("PEM private key", f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY_2}\n-----END PRIVATE KEY-----",
          (PEM_BODY, PEM_BODY_2)),
    Shape("PEM RSA key cut before END",
          f"ssl error loading key: -----BEGIN RSA PRIVATE KEY-----\n{PEM_CUT}\n{PEM_BODY_2[::-1]}",
          (PEM_CUT, PEM_BODY_2[::-1])),
    Shape("PEM key in JSON (escaped newlines)",
          f'{{"private_key": "-----BEGIN PRIVATE KEY-----\\n{PEM_BODY[::-1]}\\n-----END PRIVATE KEY-----\\n"}}',
          (PEM_BODY[::-1],)),
    Shape("PGP private key block", f"-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{PGP_BODY}\n"
          f"{PGP_BODY[::-1]}\n-----END PGP PRIVATE KEY BLOCK-----", (PGP_BODY, PGP_BODY[::-1])),
    Shape("PGP block cut", f"gpg: -----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{PGP_BODY[5:]}Q", (PGP_BODY[5:],)),
    # --- Other clouds and tools a job may print -------------------------------------------------------------
    Shape("AWS secret access key", f"aws_secret_access_key={AWS_SECRET}", (AWS_SECRET,)),
    Shape("GitHub token", f"git clone failed: https://{GITHUB_TOKEN}@github.com/contoso/etl.git", (GITHUB_TOKEN,)),
    Shape("env-style *_SECRET", f"export MY_SERVICE_CLIENT_SECRET={ENV_SECRET}", (ENV_SECRET,)),
    Shape("Slack bot token", f"slack_sdk.errors.SlackApiError: invalid_auth for {SLACK_TOKEN}", (SLACK_TOKEN,)),
    Shape("Slack webhook URL", f"requests.post(https://hooks.slack.com/services/{SLACK_HOOK}) timed out",
          (SLACK_HOOK,)),
    Shape("Teams webhook URL", f"POST https://contoso.webhook.office.com/webhookb2/{TEAMS_HOOK} returned 400",
          (TEAMS_HOOK,)),
    Shape("Google API key", f"google.api_core.exceptions.Forbidden: 403 API key {GOOGLE_KEY} not valid",
          (GOOGLE_KEY,)),
    Shape("SendGrid key", f"python_http_client.exceptions.UnauthorizedError: HTTP 401 with {SENDGRID_KEY}",
          (SENDGRID_KEY,)),
    Shape("secret word then quoted value", f'ValueError: bad credentials, password was "{GENERIC_QUOTED}"',
          (GENERIC_QUOTED,)),
)
