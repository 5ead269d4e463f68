// A real OpenID provider (the certified `oidc-provider` package) on loopback, for the
// tests and the demo: the dashboard signs in through it exactly as through a company
// IdP. Its users and their groups are in users.json (re-read at every sign-in, so a
// test can take a user out of a group); every demo user's password is DEMO_PASSWORD.
//
// Environment:
//   OIDC_PROVIDER_PORT         port on 127.0.0.1 (0: any free port, printed on stdout)
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET     the dashboard's client
//   OIDC_REDIRECT_URIS, OIDC_POST_LOGOUT_REDIRECT_URIS     comma-separated
//   DEMO_PASSWORD              the demo users' password
//   OIDC_USERS_FILE            defaults to users.json beside this script
//   OIDC_ID_TOKEN_TTL          seconds (default 600)
//   OIDC_SIGNING_KEYS_OUT      tests only: where to write the private signing keys, so
//                              that a test can sign a token with this provider's key
//                              and change one claim (issuer, audience, expiry)
//
// The signing keys are generated at every start and live in memory only.
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const usersFile = process.env.OIDC_USERS_FILE || join(here, 'users.json');
const demoPassword = process.env.DEMO_PASSWORD || '';
const list = (value) => (value || '').split(',').map((s) => s.trim()).filter(Boolean);

function users() {
  return JSON.parse(readFileSync(usersFile, 'utf8'));
}

function samePassword(given) {
  const a = createHash('sha256').update(String(given)).digest();
  const b = createHash('sha256').update(demoPassword).digest();
  return demoPassword !== '' && timingSafeEqual(a, b);
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:4rem auto}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;padding:.4rem}button{margin-top:1rem;padding:.5rem 1rem}.error{color:#b00}</style></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function signingKeys() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('hex') }] };
}

const jwks = await signingKeys();
if (process.env.OIDC_SIGNING_KEYS_OUT) {
  writeFileSync(process.env.OIDC_SIGNING_KEYS_OUT, JSON.stringify(jwks), { mode: 0o600 });
}

const server = createServer();
await new Promise((resolve) => {
  server.listen(Number(process.env.OIDC_PROVIDER_PORT || 0), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID || 'dashboard',
      client_secret: process.env.OIDC_CLIENT_SECRET || 'dashboard-demo-secret',
      redirect_uris: list(process.env.OIDC_REDIRECT_URIS),
      post_logout_redirect_uris: list(process.env.OIDC_POST_LOGOUT_REDIRECT_URIS),
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // PKCE for every client, confidential ones too.
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub', 'amr'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  ttl: { IdToken: Number(process.env.OIDC_ID_TOKEN_TTL || 600) },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = users()[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: user.sub || id,
          name: user.name,
          preferred_username: id,
          email: user.email,
          email_verified: true,
          groups: user.groups || [],
        };
      },
    };
  },
});

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function loginForm(uid, error = '') {
  return page(
    'Demo identity provider / 演示身份提供方',
    `${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">Username / 用户名</label><input id="login" name="login" autocomplete="username" autofocus>
<label for="password">Password / 密码</label><input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit">Sign in / 登录</button></form>`,
  );
}

async function interaction(req, res) {
  const [, , uid, step] = new URL(req.url, issuer).pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;
  if (prompt.name === 'login' && req.method === 'POST' && step === 'login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const user = users()[login];
    if (!user || !samePassword(form.get('password') || '')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginForm(uid, 'Wrong username or password / 用户名或密码错误'));
      return;
    }
    // Users marked "mfa" stand for a company login with a second factor.
    const amr = user.mfa ? ['pwd', 'otp'] : ['pwd'];
    await provider.interactionFinished(req, res, { login: { accountId: login, amr } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (prompt.name === 'login') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(loginForm(uid));
    return;
  }
  // A first-party application: consent is given by the company, not asked.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`interaction failed: ${error.message}`);
    });
    return;
  }
  callback(req, res);
});

process.stdout.write(`${issuer}\n`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
