/** `GET /api/me` once (again on `refresh`) and the preferences it holds; emits `preferences`. */
export function createPreferences({ rest, emit }) {
  let preferences = null;
  let mePromise = null;
  return {
    get value() {
      return preferences;
    },
    me({ refresh = false } = {}) {
      if (!mePromise || refresh) {
        mePromise = rest.me().then(
          (profile) => {
            preferences = profile?.preferences ?? null;
            emit("preferences", preferences);
            return profile;
          },
          (error) => {
            mePromise = null;
            throw error;
          },
        );
      }
      return mePromise;
    },
    async save(next) {
      preferences = await rest.savePreferences(next);
      if (mePromise) mePromise = mePromise.then((profile) => ({ ...profile, preferences }));
      emit("preferences", preferences);
      return preferences;
    },
  };
}
