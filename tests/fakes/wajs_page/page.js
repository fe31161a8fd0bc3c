// A fake WhatsApp Web page exposing the slice of wa-js the webjs engine uses, with the
// names and payload shapes of wa-js 4.6.0's type declarations (dist/**/*.d.ts).
//
// It stands for WhatsApp Web + wa-js: `window.WPP` appears only once a script assigns
// it (the engine injecting the real wa-js bundle, as on web.whatsapp.com); from then on
// the page answers with this fake. The "WhatsApp servers" are the Python side
// (server.py), reached over a WebSocket; the device identity lives in the Chromium
// profile, so a browser restarted on the same profile stays linked
// and a wiped profile needs a new QR. (The device id is in IndexedDB, see below.)
(() => {
  'use strict';
  // The device identity is kept in IndexedDB (committed with strict durability), where
  // WhatsApp Web keeps its keys: it survives a SIGKILLed browser, not a wiped profile.
  const idb = () => new Promise((resolve, reject) => {
    const req = indexedDB.open('zap-fake-wa', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('kv');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const idbDo = async (mode, fn) => {
    const db = await idb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('kv', mode, { durability: 'strict' });
      const req = fn(tx.objectStore('kv'));
      tx.oncomplete = () => { db.close(); resolve(req && req.result); };
      tx.onerror = () => reject(tx.error);
    });
  };
  let fresh = false; // whether this page made a new device id (diagnostics: fake.hellos)
  const loadDevice = async () => {
    let id = await idbDo('readonly', (s) => s.get('device'));
    if (!id) {
      fresh = true;
      id = 'dev-' + Math.random().toString(16).slice(2) + Date.now().toString(16);
      await idbDo('readwrite', (s) => s.put(id, 'device'));
    }
    return id;
  };
  const forgetDevice = () => idbDo('readwrite', (s) => s.delete('device'));
  let device = null;

  // ------------------------------------------------------------------ wa-js shapes
  class Wid {
    constructor(serialized) {
      const [user, server] = serialized.split('@');
      this.user = user; this.server = server; this._serialized = serialized;
    }
    toString() { return this._serialized; }
    equals(o) { return o && String(o) === this._serialized; }
  }
  class MsgKey {
    constructor({ fromMe, remote, id, participant }) {
      this.fromMe = !!fromMe; this.remote = new Wid(String(remote)); this.id = id;
      if (participant) this.participant = new Wid(String(participant));
      this._serialized = `${this.fromMe}_${this.remote}_${id}` + (participant ? `_${participant}` : '');
    }
    static fromString(s) {
      const [fromMe, remote, id, participant] = s.split('_');
      return new MsgKey({ fromMe: fromMe === 'true', remote, id, participant });
    }
    toString() { return this._serialized; }
  }
  class WPPError extends Error {
    constructor(code, message) { super(message); this.code = code; }
  }

  const listeners = {};
  const emit = (name, ...args) => (listeners[name] || []).slice().forEach((cb) => {
    try { cb(...args); } catch (e) { console.error(e); }
  });

  // Messages as MsgModel-like objects (properties, as wa-js models expose them).
  const store = new Map(); // serialized id -> model
  const toModel = (raw) => ({
    id: MsgKey.fromString(raw.id),
    from: new Wid(raw.from),
    to: new Wid(raw.to),
    author: raw.author ? new Wid(raw.author) : undefined,
    type: raw.type,
    body: raw.body,
    caption: raw.caption,
    t: raw.t,
    notifyName: raw.notifyName,
    ack: raw.ack || 0,
    mimetype: raw.mimetype,
    filename: raw.filename,
    quotedStanzaID: raw.quotedStanzaID,
    quotedRemoteJid: raw.quotedRemoteJid,
    quotedParticipant: raw.quotedParticipant,
    quotedFromMe: raw.quotedFromMe,
    _data: raw.data,
    isNewMsg: true,
  });
  const chatOf = (m) => (m.id.fromMe ? String(m.to) : String(m.from));
  const keep = (raw) => { const m = toModel(raw); store.set(m.id._serialized, m); return m; };

  const state = {
    ready: false, registered: false, authenticated: false, mainReady: false, online: false,
    me: null, authCode: null, lids: {}, ws: null, linkCode: null,
  };
  let seq = 0;
  const pending = new Map();
  const call = (op, data) => new Promise((resolve, reject) => {
    if (!state.ws || state.ws.readyState !== 1) { reject(new WPPError('offline', 'not connected')); return; }
    const n = ++seq;
    pending.set(n, { resolve, reject });
    state.ws.send(JSON.stringify({ op, seq: n, ...data }));
  });
  const randomHex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();

  const sendRaw = async (chatId, fields, options) => {
    if (!state.mainReady) throw new WPPError('not_ready', 'WhatsApp is not ready');
    options = options || {};
    const remote = String(chatId);
    let key;
    if (options.messageId) {
      key = typeof options.messageId === 'string' ? MsgKey.fromString(options.messageId) : options.messageId;
      if (!key.fromMe) throw new WPPError('message_key_is_not_from_me', 'Message key is not from me');
      if (!key.remote.equals(remote)) throw new WPPError('message_key_remote_id_is_not_same_of_chat', 'Message key remote id is not same of chat');
    } else {
      key = new MsgKey({ fromMe: true, remote, id: '3EB0' + randomHex(8) });
    }
    let quoted = {};
    if (options.quotedMsg) {
      const q = MsgKey.fromString(String(options.quotedMsg._serialized || options.quotedMsg));
      quoted = { quotedStanzaID: q.id, quotedRemoteJid: String(q.remote), quotedFromMe: q.fromMe };
    }
    const raw = { id: key._serialized, from: String(state.me), to: remote, t: Math.floor(Date.now() / 1000), ack: 0, ...fields, ...quoted };
    await call('send', { msg: raw });
    const m = keep(raw);
    emit('chat.new_message', m); // WhatsApp Web shows our own message too
    return { id: key._serialized, ack: 0, sendMsgResult: {} };
  };

  // wa-js at conn.main_ready: every chat in ChatStore subscribes its presence.
  const subscribeKnown = () => {
    const ids = [...new Set([...store.values()].map(chatOf))].filter((id) => id.endsWith('@c.us') || id.endsWith('@lid'));
    if (ids.length) call('subscribe', { ids }).catch(() => null);
  };
  const mainReady = () => { state.mainReady = true; subscribeKnown(); emit('conn.main_ready'); };

  const fake = {
    version: '4.6.0',
    get isReady() { return state.ready; },
    isFullReady: false,
    on: (name, cb) => { (listeners[name] = listeners[name] || []).push(cb); },
    off: (name, cb) => { listeners[name] = (listeners[name] || []).filter((x) => x !== cb); },
    conn: {
      isRegistered: () => state.registered,
      isAuthenticated: () => state.authenticated,
      isMainReady: () => state.mainReady,
      isOnline: () => state.online,
      getMyUserWid: () => (state.me ? new Wid(state.me) : undefined),
      getAuthCode: () => state.authCode,
      logout: async () => { await call('logout', {}); return true; },
      startLinkDeviceCodeForPhoneNumber: async (phone, sendPush) => {
        if (state.registered) throw new WPPError('already_authenticated', 'Already authenticated');
        const r = await call('link_code', { phone: String(phone), push: sendPush !== false });
        state.linkCode = r.code;
        emit('conn.link_code_change', r.code);
        return r.code;
      },
      genLinkDeviceCodeForPhoneNumber: async (phone, sendPush) => fake.conn.startLinkDeviceCodeForPhoneNumber(phone, sendPush),
    },
    chat: {
      sendTextMessage: (chatId, content, options) => sendRaw(chatId, { type: 'chat', body: String(content) }, options),
      sendFileMessage: (chatId, content, options) => {
        const dataUrl = String(content);
        const b64 = dataUrl.includes(',') ? dataUrl.split(',', 2)[1] : dataUrl;
        const type = !options.type || options.type === 'auto-detect' ? 'document' : options.type;
        return sendRaw(chatId, { type, caption: options.caption, mimetype: options.mimetype, filename: options.filename, data: b64 }, options);
      },
      getMessageById: async (id) => {
        const m = store.get(String(id && id._serialized ? id._serialized : id));
        if (!m) throw new WPPError('msg_not_found', `Message ${id} not found`);
        return m;
      },
      getMessages: async (chatId, options) => {
        const count = (options && options.count) || 20;
        const all = [...store.values()].filter((m) => chatOf(m) === String(chatId)).sort((a, b) => a.t - b.t);
        return (count < 0 ? all : all.slice(-count)).map((m) => ({ ...m }));
      },
      getQuotedMsgKey: (m) => {
        if (!m.quotedStanzaID) throw new WPPError('message_not_have_quoted', 'Message does not have quoted');
        return new MsgKey({ fromMe: !!m.quotedFromMe, remote: m.quotedRemoteJid || chatOf(m), id: m.quotedStanzaID });
      },
      list: async (options) => {
        const chats = new Map();
        for (const m of store.values()) {
          const c = chatOf(m);
          chats.set(c, Math.max(chats.get(c) || 0, m.t));
        }
        const out = [...chats.entries()].sort((a, b) => b[1] - a[1]).map(([id, t]) => ({ id: new Wid(id), t }));
        return options && options.count ? out.slice(0, options.count) : out;
      },
      downloadMedia: async (id) => {
        const m = await fake.chat.getMessageById(id);
        if (!m._data) throw new WPPError('message_not_contains_media', 'Message not contains media');
        const bytes = Uint8Array.from(atob(m._data), (c) => c.charCodeAt(0));
        return new Blob([bytes], { type: m.mimetype || 'application/octet-stream' });
      },
    },
    contact: {
      // wa-js: subscribes each id's presence (an IQ to WhatsApp), answers the Wids.
      subscribePresence: async (ids) => {
        const list = (Array.isArray(ids) ? ids : [ids]).map(String);
        await call('subscribe', { ids: list });
        return list.map((id) => new Wid(id));
      },
      getPnLidEntry: async (contactId) => {
        const id = String(contactId);
        if (!id.endsWith('@c.us') && !id.endsWith('@lid')) throw new WPPError('invalid_wid_for_get_pn_lid_entry', `Invalid WID: ${id}`);
        const e = state.lids[id];
        if (!e) return id.endsWith('@c.us') ? { phoneNumber: new Wid(id) } : {};
        return { lid: new Wid(e.lid), phoneNumber: new Wid(e.phone), contact: { pushname: e.name || undefined } };
      },
    },
  };

  // `window.WPP` is undefined until a script assigns it (the injected wa-js bundle);
  // the page then answers with the fake and keeps the real export aside.
  let injected = false;
  Object.defineProperty(window, 'WPP', {
    configurable: false,
    get: () => (injected ? fake : undefined),
    set: (real) => { injected = true; window.__realWPP = real; },
  });

  // ------------------------------------------------------------------ "WhatsApp servers"
  const onServer = (msg) => {
    switch (msg.op) {
      case 'reply': {
        const p = pending.get(msg.seq);
        pending.delete(msg.seq);
        if (p) (msg.error ? p.reject(new WPPError(msg.error, msg.error)) : p.resolve(msg.data || {}));
        break;
      }
      case 'hello': {
        state.lids = msg.lids || {};
        for (const raw of msg.history || []) keep(raw); // synced silently, like a history sync
        state.ready = true;
        state.online = true;
        if (msg.linked) {
          state.registered = true; state.authenticated = true; state.me = msg.me;
          if (!state.mainReady) mainReady();
          emit('conn.online', true);
        } else if (msg.qr) {
          state.authCode = msg.qr;
          emit('conn.auth_code_change', msg.qr);
        }
        break;
      }
      case 'qr':
        state.authCode = msg.qr;
        emit('conn.auth_code_change', msg.qr);
        break;
      case 'qr_idle':
        state.authCode = null;
        emit('conn.auth_code_change', null);
        emit('conn.qrcode_idle');
        break;
      case 'scanned':
        state.authCode = null;
        state.registered = true; state.authenticated = true; state.me = msg.me;
        emit('conn.auth_code_change', null);
        emit('conn.authenticated');
        setTimeout(mainReady, 50);
        break;
      case 'lids':
        state.lids = msg.lids || {};
        break;
      case 'msg': {
        state.lids = msg.lids || state.lids;
        if (msg.ciphertext_first) {
          const c = keep({ ...msg.msg, type: 'ciphertext', body: undefined });
          emit('chat.new_message', c);
        }
        const m = keep(msg.msg);
        emit('chat.new_message', m);
        if (msg.twice) emit('chat.new_message', m);
        break;
      }
      case 'presence':
        // wa-js's payload (chat/events/registerPresenceChange): a user's chat state.
        emit('chat.presence_change', {
          id: new Wid(msg.id), isOnline: msg.state !== 'unavailable', isGroup: false,
          isUser: true, shortName: msg.shortName || '', state: msg.state, t: Date.now(),
          isContact: true,
        });
        break;
      case 'ack': {
        for (const id of msg.ids) { const m = store.get(id); if (m) m.ack = msg.ack; }
        emit('chat.msg_ack_change', { ack: msg.ack, chat: new Wid(msg.chat), ids: msg.ids.map((id) => MsgKey.fromString(id)) });
        break;
      }
      case 'logout':
        state.registered = false; state.authenticated = false; state.mainReady = false;
        emit('conn.logout');
        forgetDevice().finally(() => setTimeout(() => location.reload(), 200));
        break;
      case 'hang':
        for (;;) { /* a frozen page: the engine's heartbeat must notice */ }
      default:
        break;
    }
  };

  const connect = () => {
    const ws = new WebSocket(`ws://${location.host}/ws?device=${encodeURIComponent(device)}&fresh=${fresh ? 1 : 0}`);
    state.ws = ws;
    ws.onmessage = (ev) => onServer(JSON.parse(ev.data));
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (state.online) { state.online = false; emit('conn.online', false); }
      for (const p of pending.values()) p.reject(new WPPError('offline', 'connection lost'));
      pending.clear();
      setTimeout(connect, 300);
    };
  };
  loadDevice().then((id) => { device = id; connect(); });
})();
