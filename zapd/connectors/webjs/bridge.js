// zap's bridge, injected after wa-js (window.WPP) into WhatsApp Web.
// It forwards the wa-js events the webjs engine uses to window.__zapEmit (a Playwright
// binding) as plain JSON, and offers window.__zap.* helpers the engine calls. It uses
// only names listed in zapd/connectors/webjs/surface.py (checked against the real bundle).
(() => {
  if (window.__zap) return;
  const wid = (w) => (w == null ? null : typeof w === 'string' ? w : w._serialized || String(w));
  const emit = (kind, data) => {
    try { window.__zapEmit(kind, data === undefined ? null : data); } catch (e) { /* page closing */ }
  };
  const quotedKey = (m) => {
    if (!m.quotedStanzaID) return null;
    try { return wid(WPP.chat.getQuotedMsgKey(m)); } catch (e) { return null; }
  };
  const plain = (m) => ({
    id: wid(m.id),
    fromMe: !!(m.id && m.id.fromMe),
    from: wid(m.from),
    to: wid(m.to),
    author: wid(m.author),
    type: m.type,
    body: typeof m.body === 'string' && m.type === 'chat' ? m.body : null,
    caption: m.caption || null,
    t: m.t,
    notifyName: m.notifyName || null,
    quoted: quotedKey(m),
    mimetype: m.mimetype || null,
    filename: m.filename || null,
    ack: m.ack,
  });
  const contactOf = async (jid) => {
    if (!jid || !(jid.endsWith('@lid') || jid.endsWith('@c.us'))) return null;
    try {
      const e = await WPP.contact.getPnLidEntry(jid);
      return {
        lid: e && e.lid ? wid(e.lid) : null,
        phone: e && e.phoneNumber ? wid(e.phoneNumber) : null,
        name: (e && e.contact && (e.contact.name || e.contact.pushname)) || null,
      };
    } catch (e) { return null; }
  };
  const full = async (m) => {
    const p = plain(m);
    const other = p.fromMe ? p.to : p.author || p.from;
    p.contact = await contactOf(other);
    return p;
  };
  const toB64 = (blob) => new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(',', 2)[1] || '');
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });

  WPP.on('conn.auth_code_change', (c) => emit('auth_code', c ? { type: c.type, ref: c.ref, fullCode: c.fullCode } : null));
  WPP.on('conn.qrcode_idle', () => emit('qrcode_idle'));
  WPP.on('conn.authenticated', () => emit('authenticated'));
  WPP.on('conn.main_ready', () => emit('main_ready'));
  WPP.on('conn.logout', () => emit('logout'));
  WPP.on('conn.require_auth', () => emit('require_auth'));
  WPP.on('conn.online', (online) => emit('online', !!online));
  WPP.on('conn.link_code_change', (code) => emit('link_code', code));
  // Presence (typing) reaches WhatsApp Web only for subscribed contacts: wa-js subscribes
  // the chats it knows at main_ready; a customer who writes later is subscribed here.
  const watched = new Set();
  const watchPresence = (jid) => {
    if (!jid || watched.has(jid) || !(jid.endsWith('@c.us') || jid.endsWith('@lid'))) return;
    watched.add(jid);
    Promise.resolve()
      .then(() => WPP.contact.subscribePresence(jid))
      .catch(() => watched.delete(jid));
  };
  WPP.on('chat.new_message', async (m) => {
    if (!m || !m.id) return;
    if (!m.id.fromMe && !m.author) watchPresence(wid(m.from));
    emit('message', await full(m));
  });
  WPP.on('chat.msg_ack_change', (a) => emit('ack', { ack: a.ack, chat: wid(a.chat), ids: (a.ids || []).map(wid) }));
  // {id, isUser, isGroup, state: 'typing' | 'recording_audio' | 'available' | ..., shortName}
  WPP.on('chat.presence_change', (p) => {
    if (!p || !p.isUser || p.isGroup) return;
    emit('presence', { id: wid(p.id), state: p.state || null, name: p.shortName || null });
  });

  window.__zap = {
    state: () => ({
      registered: !!WPP.conn.isRegistered(),
      authenticated: !!WPP.conn.isAuthenticated(),
      ready: !!WPP.conn.isMainReady(),
      online: WPP.conn.isOnline ? !!WPP.conn.isOnline() : true,
      me: WPP.conn.isRegistered() ? wid(WPP.conn.getMyUserWid()) : null,
    }),
    authCode: () => {
      const c = WPP.conn.getAuthCode();
      return c ? { type: c.type, ref: c.ref, fullCode: c.fullCode } : null;
    },
    find: async (id) => {
      try {
        const m = await WPP.chat.getMessageById(id);
        return m ? { id: wid(m.id), ack: m.ack } : null;
      } catch (e) { return null; }
    },
    sendText: async (chat, text, opts) => {
      const r = await WPP.chat.sendTextMessage(chat, text, opts);
      return { id: wid(r.id), ack: r.ack };
    },
    sendFile: async (chat, dataUrl, opts) => {
      const r = await WPP.chat.sendFileMessage(chat, dataUrl, opts);
      return { id: wid(r.id), ack: r.ack };
    },
    download: async (id) => toB64(await WPP.chat.downloadMedia(id)),
    // Messages of the chats active since `since` (unix seconds), oldest first.
    recent: async (since, chatCount, msgCount) => {
      const chats = await WPP.chat.list({ count: chatCount });
      const out = [];
      for (const c of chats) {
        if ((c.t || 0) < since) continue;
        const msgs = await WPP.chat.getMessages(wid(c.id), { count: msgCount });
        for (const m of msgs) if ((m.t || 0) >= since) out.push(await full(m));
      }
      out.sort((a, b) => (a.t || 0) - (b.t || 0));
      return out;
    },
    pair: async (phone) => WPP.conn.startLinkDeviceCodeForPhoneNumber(phone, true),
    logout: async () => WPP.conn.logout(),
  };
  emit('bridge', { version: WPP.version });
})();
