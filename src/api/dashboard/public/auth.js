// @ts-check
// The API key: asked for on a 401, kept in sessionStorage for this tab, sent by the /v1 client.
import { ApiError, createApi } from './api.js';
import { $ } from './dom.js';
import { notice } from './notice.js';

const KEY_STORE = 'lstm-trainer.apiKey';

function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || '';
  } catch {
    return '';
  }
}

function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    /* storage disabled: the key lasts until reload */
  }
  memoryKey = key;
}
let memoryKey = getKey();

/** The /v1 client, sending the key this tab holds. */
export const api = createApi({ getKey: () => memoryKey });

let keyWaiters = [];

function showAuth(message) {
  const panel = $('auth-panel');
  const wasHidden = panel.hidden;
  panel.hidden = false;
  $('auth-toggle').setAttribute('aria-expanded', 'true');
  $('auth-message').textContent = message || '';
  if (wasHidden || message) $('auth-key').focus();
}

function hideAuth() {
  $('auth-panel').hidden = true;
  $('auth-toggle').setAttribute('aria-expanded', 'false');
  $('auth-message').textContent = '';
}

/** A 401: ask for the key; resolves once one is entered. */
let checkingKey = false;
/** Whether the service asked for a key (a 401): the page learns that auth is on from its first call. */
let authSeen = false;

export function needKey() {
  authSeen = true;
  keyAccepted = false;
  if (checkingKey) notice('');
  checkingKey = false;
  updateKeyButton();
  showAuth(memoryKey ? 'The service rejected this API key. Enter a valid one.' : 'This service needs an API key. Enter it to continue.');
  return new Promise((resolve) => keyWaiters.push(resolve));
}

/** 'API key ✓' once the service accepted the key this tab sends. */
let keyAccepted = false;
export function updateKeyButton() {
  // only where a key matters: the service asked for one, or this tab holds one (which it may forget)
  $('auth-toggle').hidden = !(authSeen || memoryKey);
  $('auth-toggle').textContent = memoryKey && keyAccepted ? 'API key ✓' : 'API key';
}

$('auth-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('auth-key').value.trim();
  if (!key) {
    $('auth-message').textContent = 'Enter a key.';
    return;
  }
  setKey(key);
  $('auth-key').value = '';
  keyAccepted = false;
  checkingKey = true;
  updateKeyButton();
  hideAuth();
  notice('Checking the API key…');
  const waiters = keyWaiters;
  keyWaiters = [];
  for (const w of waiters) w();
  for (const f of keyEntered) f();
});

$('auth-forget').addEventListener('click', () => {
  setKey('');
  keyAccepted = false;
  updateKeyButton();
  notice('API key forgotten.');
});

$('auth-toggle').addEventListener('click', () => {
  if ($('auth-panel').hidden) showAuth('');
  else hideAuth();
});

/** What to read again once a key is entered (the page's boot registers it; no import cycle). */
const keyEntered = [];
/** @param {() => void} f */
export function onKeyEntered(f) {
  keyEntered.push(f);
}

/** Whether a call is waiting for a key to be entered (polling pauses meanwhile). */
export function waitingForKey() {
  return keyWaiters.length > 0;
}

/** A call with the tab's key succeeded: the service accepts it. */
export function keyWorked() {
  if (memoryKey && !keyAccepted) {
    keyAccepted = true;
    updateKeyButton();
    if (checkingKey) notice('API key accepted (kept for this tab).');
    checkingKey = false;
  }
}

/** Common handling of a failed call outside a form; true when it was a 401 (key asked for). */
export function reportError(e, what) {
  if (e instanceof ApiError && e.status === 401) {
    needKey();
    return true;
  }
  if (e?.name === 'AbortError') return false;
  notice(`${what}: ${e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : `cannot reach the service (${e?.message ?? e})`}`, 'error');
  return false;
}
