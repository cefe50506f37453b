/**
 * Local storage in IndexedDB: the sealed keystore, and per space its entries, outbox and
 * envelopes waiting to be opened. Entries are stored as they travel (signed ciphertext);
 * keys are only ever stored inside the sealed keystore.
 */
const DB_NAME = 'accord';
const STORE = 'kv';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** A small key-value store over one IndexedDB object store. */
export class LocalStore {
  constructor(db) {
    this.db = db;
  }

  static async open(indexedDB = globalThis.indexedDB, name = DB_NAME) {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    return new LocalStore(await request(req));
  }

  async get(key) {
    return request(this.db.transaction(STORE, 'readonly').objectStore(STORE).get(key));
  }

  async put(key, value) {
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(value, key);
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  async keys(prefix = '') {
    const all = await request(this.db.transaction(STORE, 'readonly').objectStore(STORE).getAllKeys());
    return all.filter((key) => typeof key === 'string' && key.startsWith(prefix));
  }

  async delete(key) {
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).delete(key);
    await new Promise((resolve) => {
      tx.oncomplete = resolve;
    });
  }

  close() {
    this.db.close();
  }

  /** Quick exit and local wipe: delete the whole database. */
  static async wipe(indexedDB = globalThis.indexedDB, name = DB_NAME) {
    await new Promise((resolve) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = resolve;
      req.onerror = resolve;
      req.onblocked = resolve;
    });
  }
}
