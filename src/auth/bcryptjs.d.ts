// bcryptjs 2.x ships no types; the few functions Petrel uses.
declare module 'bcryptjs' {
  export function genSaltSync(rounds?: number): string;
  export function hashSync(password: string, salt: string | number): string;
  export function compare(password: string, hash: string): Promise<boolean>;
  export function compareSync(password: string, hash: string): boolean;
  const bcrypt: {
    genSaltSync: typeof genSaltSync;
    hashSync: typeof hashSync;
    compare: typeof compare;
    compareSync: typeof compareSync;
  };
  export default bcrypt;
}
